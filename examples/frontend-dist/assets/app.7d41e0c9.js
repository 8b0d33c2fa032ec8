fetch("/api/health").then((r) => r.json()).then((h) => { document.title += ` (${h.status})`; });
