"""Media files in and out: images (`image`), video (`video`), JPEG quantisation tables
(`jpeg_tables`). Every reader of a user's or a data set's file goes through here."""
