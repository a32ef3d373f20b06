"""Drug-design computation without Django: molecules, properties, binding sites,
structures, docking, generation and depiction."""
