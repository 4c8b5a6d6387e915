"""Platform concerns shared by every context: health of the backing resources."""
