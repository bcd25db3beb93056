from lit_gan.cli import main

if __name__ == "__main__":
    main()
