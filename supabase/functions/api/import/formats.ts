/**
 * The export formats an import reads, in a module of their own: the route's contract names them
 * at start-up, while the readers (file.ts and what it imports) load on a worker's first import.
 */
export const importFormats = ["chatgpt", "openwebui"] as const;
export type ImportFormat = typeof importFormats[number];
