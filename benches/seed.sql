-- Bulk seed for the scale benchmark, straight into a database that `warden migrate` created
-- (columns as in src/store/migration/m20261123_000001_create_schema.rs). Seeding a million
-- assignments through the API would take hours; this takes well under a minute.
--
--   psql -v tenants=10000 -v per_tenant=100 -v now_us=$(date +%s%6N) [-v scopes=100] -f seed.sql URL
--
-- Shape, per tenant (tenant 0 is `default`, the others t1 .. t<tenants-1>):
--   10 permissions: document.read, perm.2 .. perm.10
--   5 roles: reader (document.read, perm.2), role.2 (perm.3, perm.4), ... role.5 (perm.9, perm.10)
--   per_tenant identities user:NNNNNNNN (8 digits, unique across tenants), one assignment each,
--   to role ((n - 1) mod 5) + 1: ACTIVE, USER, no expiry.
-- Tenant `default` also gets user:alice -> reader and user:bob -> role.2, the identities the
-- Check and BatchCheck bodies ask about (benches/wire.py).
-- scopes (issue 13; 0 or unset: every assignment tenant-wide, as before): assignment n of tenant
-- i is at scope departments/d<i>/projects/p<(n - 1) mod scopes>, so each tenant has `scopes`
-- distinct scopes and the names are distinct across tenants too (1,000 tenants x 100 scopes:
-- 100,000 scopes); alice's reader is then at departments/d0/projects/p42 (wire.py's
-- SCOPED_GRANT) and bob's role.2 at departments/d0/projects/p43.
-- Ids are md5-derived canonical UUID text (deterministic, so the links need no look-ups).
\set ON_ERROR_STOP on
\if :{?scopes}
\else
  \set scopes 0
\endif
BEGIN;
CREATE TEMP TABLE bench_tenants ON COMMIT DROP AS
  SELECT i, CASE WHEN i = 0 THEN 'default' ELSE 't' || i END AS tenant
  FROM generate_series(0, :tenants - 1) AS i;

INSERT INTO permissions (id, tenant_id, name, description, is_system, create_time, update_time, revision)
SELECT md5(t.tenant || '/permission/' || j)::uuid::text, t.tenant,
       CASE WHEN j = 1 THEN 'document.read' ELSE 'perm.' || j END, '', false, :now_us, :now_us, 1
FROM bench_tenants t, generate_series(1, 10) AS j;

INSERT INTO roles (id, tenant_id, name, description, is_system, requires_approval, create_time, update_time, revision)
SELECT md5(t.tenant || '/role/' || k)::uuid::text, t.tenant,
       CASE WHEN k = 1 THEN 'reader' ELSE 'role.' || k END, '', false, false, :now_us, :now_us, 1
FROM bench_tenants t, generate_series(1, 5) AS k;

INSERT INTO role_permissions (role_id, permission_id, tenant_id)
SELECT md5(t.tenant || '/role/' || k)::uuid::text, md5(t.tenant || '/permission/' || (2 * k - 1 + d))::uuid::text, t.tenant
FROM bench_tenants t, generate_series(1, 5) AS k, generate_series(0, 1) AS d;

INSERT INTO assignments (id, tenant_id, role_id, identity_id, identity_kind, is_immutable, expire_time, reason,
                         status, create_time, update_time, revision, scope)
SELECT md5(t.tenant || '/assignment/' || n)::uuid::text, t.tenant,
       md5(t.tenant || '/role/' || ((n - 1) % 5 + 1))::uuid::text,
       'user:' || lpad((t.i * :per_tenant + n)::text, 8, '0'), 'USER', false, NULL, '',
       'ACTIVE', :now_us, :now_us, 1,
       CASE WHEN :scopes > 0 THEN 'departments/d' || t.i || '/projects/p' || ((n - 1) % :scopes) ELSE '' END
FROM bench_tenants t, generate_series(1, :per_tenant) AS n;

INSERT INTO assignments (id, tenant_id, role_id, identity_id, identity_kind, is_immutable, expire_time, reason,
                         status, create_time, update_time, revision, scope)
VALUES (md5('default/assignment/alice')::uuid::text, 'default', md5('default/role/1')::uuid::text, 'user:alice',
        'USER', false, NULL, '', 'ACTIVE', :now_us, :now_us, 1,
        CASE WHEN :scopes > 0 THEN 'departments/d0/projects/p42' ELSE '' END),
       (md5('default/assignment/bob')::uuid::text, 'default', md5('default/role/2')::uuid::text, 'user:bob',
        'USER', false, NULL, '', 'ACTIVE', :now_us, :now_us, 1,
        CASE WHEN :scopes > 0 THEN 'departments/d0/projects/p43' ELSE '' END);

UPDATE revision_counter SET revision = 1 WHERE id = 1;
COMMIT;
-- As a live database would be: hint bits set and statistics fresh, and no autovacuum of a
-- million new rows running into the measurements that follow.
VACUUM ANALYZE;
SELECT (SELECT count(*) FROM assignments) AS assignments,
       (SELECT count(DISTINCT tenant_id) FROM assignments) AS tenants,
       (SELECT count(DISTINCT (tenant_id, scope)) FROM assignments WHERE scope <> '') AS scopes;
