"""Content store, image index, references, layer unpacking, import/load/save, registry client."""
