// The kinds are shared with the store layer (server packs name them), which must not import objects/.
export { type ObjectKind, KIND_CODES, kindFromCode } from '../store/object-kinds.js';
