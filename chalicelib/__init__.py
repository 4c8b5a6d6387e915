"""The backend of the Energy Management System, split by bounded context."""
