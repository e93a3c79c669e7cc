-- The origin (scheme://host:port) each stored secret was saved for: a secret is sent only
-- there. Bound when a saved system first names the secret; bound again to the system's
-- current origin when the value is entered again. A config that points a secret elsewhere
-- cannot use it until then.
CREATE TABLE secret_origins (
    name        TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,
    bound_at    TEXT NOT NULL
);
