"""The front end: read a function's source and bring it to A-normal form."""
