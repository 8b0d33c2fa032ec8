"""The application plane: ``BackendService`` (``backend.py``), its boot configuration
(``backend_boot.py``: cloud-init, systemd, the install script) and its release archive
(``release_archive.py``); ``StaticSite`` behind CloudFront (``frontend.py``) and the site's
file list (``site_files.py``). No Pulumi in the boot, release and file-list modules."""
