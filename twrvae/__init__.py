"""TWR-VAE (Li et al., COLING 2020): timestep-wise regularised VAE for text, and its variants."""
