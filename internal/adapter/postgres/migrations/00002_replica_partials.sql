-- Analysis state per replica: each replica stores its own partial window
-- (quality counters) and its own units' partial totals, replacing only its
-- rows (so a retried flush never counts twice); readers merge the
-- replicas' rows (postgres.Windows.Merged).

-- +goose Up
ALTER TABLE windows ADD COLUMN replica text NOT NULL DEFAULT '';
ALTER TABLE windows DROP CONSTRAINT windows_pkey, ADD PRIMARY KEY (viewpoint, seq, replica);
ALTER TABLE units ADD COLUMN replica text NOT NULL DEFAULT '';
ALTER TABLE units DROP CONSTRAINT units_pkey, ADD PRIMARY KEY (viewpoint, seq, replica, key);

-- +goose Down
DELETE FROM units WHERE replica <> '';
DELETE FROM windows WHERE replica <> '';
ALTER TABLE units DROP CONSTRAINT units_pkey, ADD PRIMARY KEY (viewpoint, seq, key);
ALTER TABLE units DROP COLUMN replica;
ALTER TABLE windows DROP CONSTRAINT windows_pkey, ADD PRIMARY KEY (viewpoint, seq);
ALTER TABLE windows DROP COLUMN replica;
