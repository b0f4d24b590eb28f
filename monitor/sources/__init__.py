"""Sources: fetching, the network guard, robots.txt, URLs, feeds, links, sitemaps and polling."""
