"""Example pcdkit plugin package (see README "Writing a plugin")."""
