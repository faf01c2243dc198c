// The UI's components: they render the models' signals and call the models' methods.
export { App, type AppProps } from './App.tsx';
