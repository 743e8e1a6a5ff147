/**
 * The persister: what `new System(spine, { persist })` attaches (registered by the public face,
 * loaded on first use), and the reading of what it wrote.
 */
import type { AttachmentFactory } from '../../actors/index.js';
import { Persister } from './persister.js';

export const persistAttachment: AttachmentFactory = (options) => new Persister(options);
export { type PersistedRecord, type PersistedSourceData, readPersisted } from './read.js';
export { BlockCoverage, RecordHeader, RecordProperty } from './records.js';
