-- GET /api/metrics/fleet from maintained aggregates (issue 14), not one index probe per live instance.
-- instance_health_latest: each live instance's newest health report (what the old statement found with
-- a lateral "order by checked_at desc limit 1"); fleet_counts: the totals, kept by statement-level
-- triggers from transition tables, so a 1,000-row health sweep is one trigger run, not 1,000.
-- Counters are append-only deltas: every write inserts its (dim, key, n) rows and never updates one, so
-- concurrent transactions never wait on each other's counter rows and cannot deadlock on them (shared
-- counter rows updated in different orders by two transactions could: a 500 to one of them). The read
-- sums the rows; fleet_counts_compact() (the health sweep job) folds them into one row per key.
CREATE TABLE "instance_health_latest" (
	"instance_id" uuid PRIMARY KEY NOT NULL REFERENCES "instances"("id") ON DELETE cascade,
	"checked_at" timestamp with time zone NOT NULL,
	"live" boolean NOT NULL,
	"ready" boolean NOT NULL,
	"rss_bytes" bigint,
	"heap_used_bytes" bigint,
	"missing" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fleet_counts" (
	"dim" varchar(20) NOT NULL,
	"key" varchar(50) NOT NULL,
	"n" bigint NOT NULL
);
--> statement-breakpoint
-- Appends (dim, key, n) deltas; zero deltas write nothing.
CREATE FUNCTION fleet_counts_add(deltas jsonb) RETURNS void LANGUAGE sql AS $$
	insert into fleet_counts (dim, key, n)
	select d.dim, d.key, sum(d.n) from jsonb_to_recordset(deltas) as d(dim text, key text, n bigint)
	group by d.dim, d.key having sum(d.n) <> 0
$$;
--> statement-breakpoint
-- Folds the deltas into one row per key. Correct beside writers and another compaction (READ COMMITTED):
-- rows appended after this statement's snapshot stay; a row another compaction deleted first is skipped
-- after its commit, and each compaction re-inserts exactly the sum of the rows it deleted.
CREATE FUNCTION fleet_counts_compact() RETURNS integer LANGUAGE sql AS $$
	with gone as (delete from fleet_counts returning dim, key, n),
	folded as (insert into fleet_counts (dim, key, n)
		select dim, key, sum(n) from gone group by dim, key having sum(n) <> 0 returning 1)
	select (select count(*)::int from gone)
$$;
--> statement-breakpoint
CREATE FUNCTION fleet_counts_instances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE deltas jsonb;
BEGIN
	IF TG_OP = 'INSERT' THEN
		select coalesce(jsonb_agg(x), '[]') into deltas from (
			select 'status' as dim, status as key, 1 as n from new_rows where deleted_at is null
			union all select 'desired', desired_state, 1 from new_rows where deleted_at is null) x;
	ELSIF TG_OP = 'DELETE' THEN
		select coalesce(jsonb_agg(x), '[]') into deltas from (
			select 'status' as dim, status as key, -1 as n from old_rows where deleted_at is null
			union all select 'desired', desired_state, -1 from old_rows where deleted_at is null) x;
	ELSE
		-- Most updates touch none of the counted columns: nothing to write. (Transition tables have no
		-- index; a join of the two was a nested loop, so they are compared as sorted lists.)
		IF (select array_agg(row(id, status, desired_state, deleted_at is null) order by id) from old_rows)
			= (select array_agg(row(id, status, desired_state, deleted_at is null) order by id) from new_rows) THEN RETURN NULL; END IF;
		select coalesce(jsonb_agg(x), '[]') into deltas from (
			select 'status' as dim, status as key, -1 as n from old_rows where deleted_at is null
			union all select 'desired', desired_state, -1 from old_rows where deleted_at is null
			union all select 'status', status, 1 from new_rows where deleted_at is null
			union all select 'desired', desired_state, 1 from new_rows where deleted_at is null) x;
		-- A destroyed instance leaves the health totals; one brought back (none today) rejoins with its newest report.
		delete from instance_health_latest l using new_rows n where l.instance_id = n.id and n.deleted_at is not null;
		insert into instance_health_latest (instance_id, checked_at, live, ready, rss_bytes, heap_used_bytes, missing)
			select h.instance_id, h.checked_at, h.live, h.ready, h.rss_bytes, h.heap_used_bytes, jsonb_array_length(h.missing_node_types)
			from old_rows o cross join lateral (
				select * from instance_health where instance_id = o.id order by checked_at desc limit 1) h
			where o.deleted_at is not null and exists (select 1 from instances i where i.id = o.id and i.deleted_at is null)
			on conflict (instance_id) do nothing;
	END IF;
	PERFORM fleet_counts_add(deltas);
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_counts_instances_ins AFTER INSERT ON instances REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_instances();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_instances_upd AFTER UPDATE ON instances REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_instances();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_instances_del AFTER DELETE ON instances REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_instances();
--> statement-breakpoint
CREATE FUNCTION fleet_counts_clusters() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE deltas jsonb;
BEGIN
	IF TG_OP = 'INSERT' THEN
		select coalesce(jsonb_agg(x), '[]') into deltas from (select 'cluster' as dim, status as key, 1 as n from new_rows where deleted_at is null) x;
	ELSIF TG_OP = 'DELETE' THEN
		select coalesce(jsonb_agg(x), '[]') into deltas from (select 'cluster' as dim, status as key, -1 as n from old_rows where deleted_at is null) x;
	ELSE
		IF (select array_agg(row(id, status, deleted_at is null) order by id) from old_rows)
			= (select array_agg(row(id, status, deleted_at is null) order by id) from new_rows) THEN RETURN NULL; END IF;
		select coalesce(jsonb_agg(x), '[]') into deltas from (
			select 'cluster' as dim, status as key, -1 as n from old_rows where deleted_at is null
			union all select 'cluster', status, 1 from new_rows where deleted_at is null) x;
	END IF;
	PERFORM fleet_counts_add(deltas);
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_counts_clusters_ins AFTER INSERT ON clusters REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_clusters();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_clusters_upd AFTER UPDATE ON clusters REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_clusters();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_clusters_del AFTER DELETE ON clusters REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_clusters();
--> statement-breakpoint
-- The health totals are exactly the sums over instance_health_latest, whose rows exist only for live instances.
-- Transition tables cannot name both OLD and NEW for INSERT or DELETE: one trigger per operation, one function.
CREATE FUNCTION fleet_counts_health_ins() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE deltas jsonb;
BEGIN
	select coalesce(jsonb_agg(x), '[]') into deltas from (
		select 'health' as dim, 'reporting' as key, count(*) as n from new_rows
		union all select 'health', 'live', count(*) filter (where live) from new_rows
		union all select 'health', 'ready', count(*) filter (where ready) from new_rows
		union all select 'health', 'with_missing', count(*) filter (where missing > 0) from new_rows
		union all select 'health', 'rss', coalesce(sum(rss_bytes), 0) from new_rows
		union all select 'health', 'heap', coalesce(sum(heap_used_bytes), 0) from new_rows) x;
	PERFORM fleet_counts_add(deltas);
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION fleet_counts_health_del() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE deltas jsonb;
BEGIN
	select coalesce(jsonb_agg(x), '[]') into deltas from (
		select 'health' as dim, 'reporting' as key, -count(*) as n from old_rows
		union all select 'health', 'live', -count(*) filter (where live) from old_rows
		union all select 'health', 'ready', -count(*) filter (where ready) from old_rows
		union all select 'health', 'with_missing', -count(*) filter (where missing > 0) from old_rows
		union all select 'health', 'rss', -coalesce(sum(rss_bytes), 0) from old_rows
		union all select 'health', 'heap', -coalesce(sum(heap_used_bytes), 0) from old_rows) x;
	PERFORM fleet_counts_add(deltas);
	RETURN NULL;
END $$;
--> statement-breakpoint
-- An update changes rows one for one: the deltas are the sums over the new rows minus those over the old
-- (no join of the two transition tables, which have no index).
CREATE FUNCTION fleet_counts_health_upd() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE deltas jsonb;
BEGIN
	select jsonb_build_array(
		jsonb_build_object('dim', 'health', 'key', 'live', 'n', n.live - o.live),
		jsonb_build_object('dim', 'health', 'key', 'ready', 'n', n.ready - o.ready),
		jsonb_build_object('dim', 'health', 'key', 'with_missing', 'n', n.with_missing - o.with_missing),
		jsonb_build_object('dim', 'health', 'key', 'rss', 'n', n.rss - o.rss),
		jsonb_build_object('dim', 'health', 'key', 'heap', 'n', n.heap - o.heap)) into deltas
	from (select count(*) filter (where live) as live, count(*) filter (where ready) as ready, count(*) filter (where missing > 0) as with_missing,
			coalesce(sum(rss_bytes), 0) as rss, coalesce(sum(heap_used_bytes), 0) as heap from new_rows) n,
		(select count(*) filter (where live) as live, count(*) filter (where ready) as ready, count(*) filter (where missing > 0) as with_missing,
			coalesce(sum(rss_bytes), 0) as rss, coalesce(sum(heap_used_bytes), 0) as heap from old_rows) o;
	PERFORM fleet_counts_add(deltas);
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER fleet_counts_health_ins AFTER INSERT ON instance_health_latest REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_health_ins();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_health_upd AFTER UPDATE ON instance_health_latest REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_health_upd();
--> statement-breakpoint
CREATE TRIGGER fleet_counts_health_del AFTER DELETE ON instance_health_latest REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_health_del();
--> statement-breakpoint
-- A health report becomes its instance's latest when it is the newest one seen and the instance is live.
CREATE FUNCTION instance_health_latest_from_reports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	insert into instance_health_latest as l (instance_id, checked_at, live, ready, rss_bytes, heap_used_bytes, missing)
	select distinct on (r.instance_id) r.instance_id, r.checked_at, r.live, r.ready, r.rss_bytes, r.heap_used_bytes, jsonb_array_length(r.missing_node_types)
	from new_rows r join instances i on i.id = r.instance_id and i.deleted_at is null
	order by r.instance_id, r.checked_at desc, r.id desc
	on conflict (instance_id) do update set checked_at = excluded.checked_at, live = excluded.live, ready = excluded.ready,
		rss_bytes = excluded.rss_bytes, heap_used_bytes = excluded.heap_used_bytes, missing = excluded.missing
	where excluded.checked_at >= l.checked_at;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER instance_health_latest_ins AFTER INSERT ON instance_health REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION instance_health_latest_from_reports();
--> statement-breakpoint
-- Reports deleted (the retention purge, an instance's hard delete): an instance whose latest report went
-- falls back to its newest remaining one, or leaves the health totals when none is left.
CREATE FUNCTION instance_health_latest_after_purge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	with gone as (
		delete from instance_health_latest l using (select distinct instance_id from old_rows) o
		where l.instance_id = o.instance_id and not exists (
			select 1 from instance_health h where h.instance_id = l.instance_id and h.checked_at >= l.checked_at)
		returning l.instance_id)
	insert into instance_health_latest (instance_id, checked_at, live, ready, rss_bytes, heap_used_bytes, missing)
	select h.instance_id, h.checked_at, h.live, h.ready, h.rss_bytes, h.heap_used_bytes, jsonb_array_length(h.missing_node_types)
	from gone g join instances i on i.id = g.instance_id and i.deleted_at is null
	cross join lateral (select * from instance_health where instance_id = g.instance_id order by checked_at desc limit 1) h;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER instance_health_latest_del AFTER DELETE ON instance_health REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION instance_health_latest_after_purge();
--> statement-breakpoint
-- The totals of the data already here.
INSERT INTO instance_health_latest (instance_id, checked_at, live, ready, rss_bytes, heap_used_bytes, missing)
SELECT DISTINCT ON (h.instance_id) h.instance_id, h.checked_at, h.live, h.ready, h.rss_bytes, h.heap_used_bytes, jsonb_array_length(h.missing_node_types)
FROM instance_health h JOIN instances i ON i.id = h.instance_id AND i.deleted_at IS NULL
ORDER BY h.instance_id, h.checked_at DESC, h.id DESC;
--> statement-breakpoint
-- The INSERT above counted the health totals through its trigger; instances and clusters are counted here.
SELECT fleet_counts_add(coalesce((SELECT jsonb_agg(x) FROM (
	SELECT 'status' AS dim, status AS key, 1 AS n FROM instances WHERE deleted_at IS NULL
	UNION ALL SELECT 'desired', desired_state, 1 FROM instances WHERE deleted_at IS NULL
	UNION ALL SELECT 'cluster', status, 1 FROM clusters WHERE deleted_at IS NULL) x), '[]'));
--> statement-breakpoint
-- Recounts everything from the tables (the totals above were counted the same way). A health report
-- inserted while its instance is being destroyed, both uncommitted, can leave that instance's latest
-- row behind (no lock orders the two; locking would risk deadlocks with status updates); this repairs
-- it, and test/workers/fleetCounts.test.ts compares the maintained totals with a recount.
CREATE FUNCTION fleet_counts_rebuild() RETURNS void LANGUAGE sql AS $$
	delete from fleet_counts;
	alter table instance_health_latest disable trigger user;
	delete from instance_health_latest;
	insert into instance_health_latest (instance_id, checked_at, live, ready, rss_bytes, heap_used_bytes, missing)
	select distinct on (h.instance_id) h.instance_id, h.checked_at, h.live, h.ready, h.rss_bytes, h.heap_used_bytes, jsonb_array_length(h.missing_node_types)
	from instance_health h join instances i on i.id = h.instance_id and i.deleted_at is null
	order by h.instance_id, h.checked_at desc, h.id desc;
	alter table instance_health_latest enable trigger user;
	select fleet_counts_add(coalesce((select jsonb_agg(x) from (
		select 'status' as dim, status as key, 1 as n from instances where deleted_at is null
		union all select 'desired', desired_state, 1 from instances where deleted_at is null
		union all select 'cluster', status, 1 from clusters where deleted_at is null
		union all select 'health', 'reporting', count(*) from instance_health_latest
		union all select 'health', 'live', count(*) filter (where live) from instance_health_latest
		union all select 'health', 'ready', count(*) filter (where ready) from instance_health_latest
		union all select 'health', 'with_missing', count(*) filter (where missing > 0) from instance_health_latest
		union all select 'health', 'rss', coalesce(sum(rss_bytes), 0) from instance_health_latest
		union all select 'health', 'heap', coalesce(sum(heap_used_bytes), 0) from instance_health_latest) x), '[]'));
$$;
