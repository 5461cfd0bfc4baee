"""Neural building blocks shared by the methods (twrvae/, baselines/): below them, above the harness contract."""
