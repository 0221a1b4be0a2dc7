//! Placeholder module: the PostgreSQL replica tests live here (see the PostgreSQL issue).
