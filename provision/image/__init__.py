"""OS images: recipes from the site model (pure), built with mmdebstrap, kept in an image
directory with their digest and package manifest (``gpuctl image build|list``)."""
