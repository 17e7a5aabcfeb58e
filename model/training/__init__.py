"""Training FCA-Net: data sources, augmentation, click simulation, click loss, the trainer."""
