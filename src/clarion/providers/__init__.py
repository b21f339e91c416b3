"""Provider adapters, each one a `clarion.domain.ports.Provider`."""
