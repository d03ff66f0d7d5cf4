-- The default-opclass GIN index served only `?` (an attribute exists), a condition that
-- matches most contacts and is better read by a scan; it tripled the cost of writing a
-- contact. jsonb_path_ops (`@>`, attribute equality) stays.
DROP INDEX contacts_attribute_keys;
