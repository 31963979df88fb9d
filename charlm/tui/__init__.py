"""The terminal app (Textual). The core (charlm/ outside this package) never imports textual."""
