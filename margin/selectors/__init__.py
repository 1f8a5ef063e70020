"""Every read of the database, by subject: what pages, the API, the tasks and the services
read. A selector never writes and never imports a service; the one read a write needs under a
lock (the account state) lives with the write and reuses the reading here."""
