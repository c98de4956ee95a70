"""Container backends: each implements `ds01ctl.model.driver.Driver` in its own API."""
