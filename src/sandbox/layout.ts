/** Where things are inside the sandbox image (images/Dockerfile, images/supervisor.py). */
export const TARGET = '/opt/target';
export const SITE_PACKAGES = `${TARGET}/lib/python3.11/site-packages`;
export const HOME = '/home/sandbox';
export const STATE_DIR = '/var/lib/sandbox-install';
export const INPUT_MOUNT = '/input';
export const RELAY_PORT = 3141;
