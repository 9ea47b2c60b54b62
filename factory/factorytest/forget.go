package factorytest

// RemoveSchematic makes the fake forget a schematic, as a factory that lost its
// storage would: GET /schematics/<id> then answers 404 until it is posted again.
func (f *Factory) RemoveSchematic(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.schematics, id)
}
