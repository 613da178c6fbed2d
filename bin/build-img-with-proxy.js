#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (run `npm run build`).
import '../dist/src/cli/build-img-with-proxy.js';
