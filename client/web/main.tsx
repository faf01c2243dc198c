// Entry point of the web client.
import { render } from 'preact';

function App() {
  return <main><h1>Umbra</h1></main>;
}

render(<App />, document.getElementById('app')!);
