//! Schema migrations; entry `i` upgrades `user_version` `i` to `i + 1`.
//! Never edit one that has shipped: append a new one.

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        lineage TEXT NOT NULL,
        serial INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        manifest TEXT NOT NULL,
        model TEXT NOT NULL,
        app TEXT NOT NULL,
        target TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('symlink', 'hardlink', 'copy')),
        external INTEGER NOT NULL DEFAULT 0 CHECK (external IN (0, 1)),
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX links_manifest ON links (manifest);
    CREATE INDEX links_model ON links (model);
    CREATE TABLE file_index (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        blake3 TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 2: links belong to environments, not manifests; the index keeps ctime; a journal of
    // links being made and of applies in progress, for recovery after a kill.
    //
    // Each manifest that had links becomes a `legacy:{manifest}` environment; the first apply
    // of that manifest claims its legacy links. The file index is emptied: schema 1's `scan`
    // could record a changed file's new stat next to its old hashes, so no entry of it can be
    // trusted; plans hash each file once, and apply indexes it again.
    "CREATE TABLE environments (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        name TEXT,
        -- How people know it: its name, or its manifest and variable values.
        label TEXT NOT NULL DEFAULT '',
        manifest TEXT NOT NULL,
        apps TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        applied_at TEXT
    );
    INSERT INTO environments (key, manifest, created_at)
        SELECT 'legacy:' || manifest, manifest, MIN(created_at) FROM links GROUP BY manifest;
    CREATE TABLE links_v2 (
        id INTEGER PRIMARY KEY,
        env INTEGER NOT NULL REFERENCES environments (id),
        model TEXT NOT NULL,
        app TEXT NOT NULL,
        target TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('symlink', 'hardlink', 'copy')),
        external INTEGER NOT NULL DEFAULT 0 CHECK (external IN (0, 1)),
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        -- For a copy: the inode of the store entry it was copied from (a new inode there means
        -- the copy is stale). NULL for other kinds and for copies recorded by schema 1.
        source_ino INTEGER,
        created_at TEXT NOT NULL
    );
    INSERT INTO links_v2
        SELECT l.id, e.id, l.model, l.app, l.target, l.source, l.kind, l.external, l.dev, l.ino,
               l.mtime_ns, l.size, NULL, l.created_at
        FROM links l JOIN environments e ON e.key = 'legacy:' || l.manifest;
    DROP TABLE links;
    ALTER TABLE links_v2 RENAME TO links;
    CREATE INDEX links_env ON links (env);
    CREATE INDEX links_model ON links (model);
    DROP TABLE file_index;
    CREATE TABLE file_index (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        blake3 TEXT NOT NULL
    ) WITHOUT ROWID;
    -- The store this registry describes (physical path), once known.
    ALTER TABLE meta ADD COLUMN store TEXT;
    CREATE TABLE pending (
        target TEXT PRIMARY KEY,
        env INTEGER NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
        pid INTEGER NOT NULL,
        start INTEGER NOT NULL,
        since TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        env INTEGER PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
        pid INTEGER NOT NULL,
        start INTEGER NOT NULL,
        since TEXT NOT NULL
    );",
    // 3: what each environment declared at its last apply, so that `gc` and `rm` know which
    // stored models another environment still needs without reading its manifest (whose
    // variables may differ). A JSON array of model ids (`type/family/name`); NULL when not
    // known (environments recorded before this schema): their links still protect their models.
    "ALTER TABLE environments ADD COLUMN models TEXT;",
    // 4: what a symlink says, when it is not the path of its source: a link into an app that
    // runs in a container names the store as the container sees it (it dangles on the host).
    // NULL for every other link.
    "ALTER TABLE links ADD COLUMN text TEXT;",
];
