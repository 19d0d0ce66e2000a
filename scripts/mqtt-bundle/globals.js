// Injected as module-scoped bindings wherever the bundled code names `Buffer` or `process`: no global is set or read.
import { Buffer } from 'buffer'
import process from './process.js'
export { Buffer, process }
