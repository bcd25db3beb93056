"""Image-quality metrics (FID, KID, Inception Score) and the Inception network they share."""
