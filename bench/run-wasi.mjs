// Runs a wasm32-wasip1 program under Node's WASI with the current directory
// preopened, passing the remaining arguments. Used by the hasher benchmark
// to time the same Rust code compiled to wasm.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv, env, exit } from "node:process";

const [wasmPath, ...args] = argv.slice(2);
const wasi = new WASI({ version: "preview1", args: [wasmPath, ...args], env, preopens: { ".": "." }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
