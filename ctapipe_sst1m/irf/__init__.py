"""Instrument response functions: telescope set-ups, event selections and cuts for ctapipe's IRF tools."""
