declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}

/** The build-time settings the demo reads (Vite replaces them; see src/config.ts). */
interface ImportMetaEnv {
  readonly VITE_LONGLINK_TRANSPORTS?: string
}
interface ImportMeta {
  readonly env: ImportMetaEnv
}
