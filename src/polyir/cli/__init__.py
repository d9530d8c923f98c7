"""The `polyir` command line (app.py puts it together): one module per command group over the library, shared
console helpers in console.py; no logic of its own."""
