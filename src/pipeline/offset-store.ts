import type { Pool, PoolClient } from 'pg'
import type { TopicPartition, TopicPartitionOffset } from '../kafka/types.ts'

/** Next offsets stored in PostgreSQL with the rows they cover (sluice_offsets). */
export async function loadOffsets (pool: Pool, group: string, partitions: readonly TopicPartition[]): Promise<TopicPartitionOffset[]> {
  if (partitions.length === 0) return []
  const res = await pool.query(
    `SELECT o.topic, o.partition, o.next_offset FROM sluice_offsets o
     JOIN unnest($2::text[], $3::int[]) AS p(topic, partition) USING (topic, partition)
     WHERE o.consumer_group = $1`,
    [group, partitions.map((p) => p.topic), partitions.map((p) => p.partition)]
  )
  return res.rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: Number(r.next_offset) }))
}

/**
 * Stores next offsets inside the caller's transaction. Offsets only move forward: a worker
 * that lost a partition and commits late cannot move it back (its rows are duplicates of
 * what the new owner writes, and are dropped by event id). A partition listed twice stores
 * its highest offset (ON CONFLICT DO UPDATE cannot touch one row twice in a statement).
 */
export async function storeOffsets (client: PoolClient, group: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
  if (offsets.length === 0) return
  await client.query(
    `INSERT INTO sluice_offsets AS o (consumer_group, topic, partition, next_offset, updated_at)
     SELECT $1, t, p, max(n), now() FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n)
     GROUP BY t, p
     ON CONFLICT (consumer_group, topic, partition)
     DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
     WHERE o.next_offset < EXCLUDED.next_offset`,
    [group, offsets.map((o) => o.topic), offsets.map((o) => o.partition), offsets.map((o) => String(o.offset))]
  )
}
