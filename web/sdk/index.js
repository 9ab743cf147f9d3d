// @ts-check
/** The Hearth client SDK: `import { HearthClient, RoomModel, Mesh, Sfu, HearthError } from './sdk/index.js'`. */
export { HearthClient, HearthError, tokenExpiry } from './hearth-client.js';
export { RoomModel, memberNumber } from './room-model.js';
export { Mesh, defaultVideoBitrate } from './mesh.js';
export { Sfu } from './sfu.js';
