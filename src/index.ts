/**
 * dorsal — the public face. Every export is named here explicitly.
 */
export { ConfigError, DorsalError, LayoutError } from './errors.js';
