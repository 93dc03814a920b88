/**
 * Supabase's compute sizes and the limits that bound a chat backend on each, as Supabase documents
 * them: https://supabase.com/docs/guides/platform/compute-and-disk (the source of that page:
 * supabase/supabase, apps/docs/content/guides/platform/compute-and-disk.mdx, read 2026-12-05).
 * Kept here as data so the scale figure can say how many concurrent replies each size carries at
 * the costs it measured; check the page before relying on a number, since plans change.
 */
export interface ComputeSize {
  name: string;
  /** CPU cores and whether they are shared (burstable) */
  cores: number;
  shared: boolean;
  memoryGb: number;
  /** Postgres max_connections (a recommended value; it can be changed) */
  dbConnections: number;
  /** clients the shared pooler (Supavisor) accepts at once */
  poolerClients: number;
  /** the disk's limits at this size (below Large: a baseline that bursts for short periods) */
  iops: number;
  throughputMbps: number;
}

export const COMPUTE_SIZES: ComputeSize[] = [
  {
    name: "Micro",
    cores: 2,
    shared: true,
    memoryGb: 1,
    dbConnections: 60,
    poolerClients: 200,
    iops: 500,
    throughputMbps: 87,
  },
  {
    name: "Small",
    cores: 2,
    shared: true,
    memoryGb: 2,
    dbConnections: 90,
    poolerClients: 400,
    iops: 1000,
    throughputMbps: 174,
  },
  {
    name: "Medium",
    cores: 2,
    shared: true,
    memoryGb: 4,
    dbConnections: 120,
    poolerClients: 600,
    iops: 2000,
    throughputMbps: 347,
  },
  {
    name: "Large",
    cores: 2,
    shared: false,
    memoryGb: 8,
    dbConnections: 160,
    poolerClients: 800,
    iops: 3600,
    throughputMbps: 630,
  },
  {
    name: "XL",
    cores: 4,
    shared: false,
    memoryGb: 16,
    dbConnections: 240,
    poolerClients: 1000,
    iops: 6000,
    throughputMbps: 1188,
  },
  {
    name: "2XL",
    cores: 8,
    shared: false,
    memoryGb: 32,
    dbConnections: 380,
    poolerClients: 1500,
    iops: 12000,
    throughputMbps: 2375,
  },
  {
    name: "4XL",
    cores: 16,
    shared: false,
    memoryGb: 64,
    dbConnections: 480,
    poolerClients: 3000,
    iops: 20000,
    throughputMbps: 4750,
  },
];
