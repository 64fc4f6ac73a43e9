-- Lets the store recognise an entry whose guid changed but whose link and title did not.
CREATE INDEX entries_by_link ON entries (source_id, link);
