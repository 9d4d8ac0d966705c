"""Measuring a GAN without a pretrained network: SWD, MS-SSIM, NDB/K and audio consistency (book: chapter 8)."""
