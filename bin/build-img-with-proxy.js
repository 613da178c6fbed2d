#!/usr/bin/env node
// Thin launcher: the bundled CLI lives in dist/bundle/ (`npm run build`: tsc, then scripts/bundle.mjs).
import '../dist/bundle/build-img-with-proxy.js';
