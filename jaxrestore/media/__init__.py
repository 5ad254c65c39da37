"""Media files in and out: images (`image`), video frames (`video`: the one decoder),
video restored into video (`transcode`), JPEG quantisation tables (`jpeg_tables`). Every
reader of a user's or a data set's file goes through here."""
