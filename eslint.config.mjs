// ESLint flat config: @eslint/js + typescript-eslint recommended (no type-aware rules, to stay fast),
// eslint-plugin-vue for the pages, and eslint-config-prettier last so no style rule fights Prettier.
import js from '@eslint/js'
import { defineConfig, globalIgnores } from 'eslint/config'
import prettier from 'eslint-config-prettier/flat'
import vue from 'eslint-plugin-vue'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default defineConfig(
  globalIgnores([
    '**/node_modules/',
    'dist/',
    'unpackage/',
    // Generated MQTT.js bundle and its declarations (scripts/vendor-mqtt.mjs writes them).
    'uni_modules/longlink-socket/js_sdk/vendor/',
    'bench/results/',
    'bench/.build/',
    'tests/.artifacts/',
  ]),
  {
    files: ['**/*.{ts,mts,mjs,js,vue}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      // `heartbeat && heartbeat.stop()` and `error ? reject(error) : resolve()` are the code's deliberate short forms.
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
      // `const { success: _s, ...rest } = options` drops keys on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // `let admin` read (as undefined) by a callback that may run before it is set would throw as a `const`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.vue'],
    extends: [vue.configs['flat/recommended']],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
    // <script lang="ts">: vue-tsc checks names, and no-undef knows neither `uni` nor TS types.
    rules: { 'no-undef': 'off' },
  },
  {
    // uni-app names each page after its route folder: pages/index/index.vue.
    files: ['pages/**/*.vue'],
    rules: { 'vue/multi-word-component-names': 'off' },
  },
  {
    // Node scripts and configs.
    files: ['**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    // Native WeChat mini-programs: CommonJS files wrapped by the WeChat runtime, which gives them require and its globals.
    files: ['examples/wechat-native/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { ...globals.commonjs, wx: 'readonly', App: 'readonly', Page: 'readonly', getApp: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Shims bundled into the vendored MQTT.js: CommonJS and ES modules, run in mini-programs.
    files: ['scripts/mqtt-bundle/*.js'],
    languageOptions: { globals: globals.commonjs },
  },
  prettier,
)
