"""Catalogs shipped as data: AIME's framework images (ml_images.repo), recipes, model facts."""
