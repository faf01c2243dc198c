// Types for what Vite adds to the web client: CSS imports and import.meta.env.
/// <reference types="vite/client" />
