"""Site settings that staff edit in the admin: title, description, time zone, page size."""
