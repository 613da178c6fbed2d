/**
 * Page-aligned 1 MiB buffers, for O_DIRECT file writes (docs/proxy.md, "Recording, fifth
 * round"). Node's Buffers come from malloc and are only 16-byte aligned, which O_DIRECT
 * refuses (EINVAL); a WebAssembly.Memory is mmap'd, so its start is page-aligned. Slots are
 * carved from memories of SLOTS_PER_MEMORY slots and pooled: a recording takes a few and gives
 * them back, so a GiB allocates (and the kernel zeroes) nothing new. The pool keeps at most
 * MAX_FREE_SLOTS free; a slot dropped beyond that is collected with its memory.
 */

/** The alignment every O_DIRECT write here keeps: address, length and file offset (4 KiB covers 512 B and 4 KiB sectors). */
export const DIRECT_ALIGN = 4096;
export const ALIGNED_SLOT_BYTES = 1024 * 1024;
const SLOTS_PER_MEMORY = 4;
const MAX_FREE_SLOTS = 8;
const WASM_PAGE = 64 * 1024;

/** The one WebAssembly API used (the project's lib settings carry no WebAssembly types). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer } } }).WebAssembly.Memory;

const alignedBuffers = new WeakSet<ArrayBufferLike>();
const free: Buffer[] = [];
/**
 * Every memory made so far, by number: they are shared (SharedArrayBuffer), so a hash worker
 * given one can hash a slot in place instead of the main thread copying it (src/util/digest.ts).
 * Held weakly: a memory whose slots are all gone is collected.
 */
const memories: WeakRef<SharedArrayBuffer>[] = [];
const memoryIds = new WeakMap<ArrayBufferLike, number>();
interface MemoryWatcher {
  added(id: number, mem: SharedArrayBuffer): void;
  /** The main thread dropped memory `id`: a watcher holding it must let go, or it is never freed. */
  dropped(id: number): void;
}
const watchers = new Set<MemoryWatcher>();
const collected = new FinalizationRegistry<number>((id) => {
  for (const w of watchers) w.dropped(id);
});

/** Tells `w` of every memory alive now and every one made or dropped later (hash workers); returns the unwatch. */
export function watchAlignedMemories(w: MemoryWatcher): () => void {
  memories.forEach((r, id) => {
    const m = r.deref();
    if (m) w.added(id, m);
  });
  watchers.add(w);
  return () => watchers.delete(w);
}

/** Where `b` lies when it is in one of the shared aligned memories: memory number and offset. */
export function alignedLocation(b: Uint8Array): { mem: number; offset: number } | undefined {
  const mem = memoryIds.get(b.buffer);
  return mem === undefined ? undefined : { mem, offset: b.byteOffset };
}

/** A page-aligned ALIGNED_SLOT_BYTES buffer (contents undefined); give it back with releaseAlignedSlot. */
export function acquireAlignedSlot(): Buffer {
  const slot = free.pop();
  if (slot) return slot;
  const pages = (ALIGNED_SLOT_BYTES * SLOTS_PER_MEMORY) / WASM_PAGE;
  const mem = new WasmMemory({ initial: pages, maximum: pages, shared: true });
  alignedBuffers.add(mem.buffer);
  const id = memories.push(new WeakRef(mem.buffer)) - 1;
  memoryIds.set(mem.buffer, id);
  collected.register(mem.buffer, id);
  for (const w of watchers) w.added(id, mem.buffer);
  for (let i = 1; i < SLOTS_PER_MEMORY; i++) free.push(Buffer.from(mem.buffer, i * ALIGNED_SLOT_BYTES, ALIGNED_SLOT_BYTES));
  return Buffer.from(mem.buffer, 0, ALIGNED_SLOT_BYTES);
}

/** Returns a slot to the pool; the caller must not use it afterwards. */
export function releaseAlignedSlot(slot: Buffer): void {
  if (free.length < MAX_FREE_SLOTS && slot.length === ALIGNED_SLOT_BYTES && isDirectWritable(slot)) free.push(slot);
}

/** True when `b` lies in page-aligned memory at an aligned offset and has an aligned length: O_DIRECT can write it as is. */
export function isDirectWritable(b: Buffer): boolean {
  return alignedBuffers.has(b.buffer) && b.byteOffset % DIRECT_ALIGN === 0 && b.length % DIRECT_ALIGN === 0;
}
