/** The run's target Python: from the option, the host's python3.11 or the image; another 3.x refused before any container. */
import { describe, expect, it } from 'vitest';
import { EnvironmentError, InputError } from '../errors.js';
import { chooseTarget, pipTarget, withImage } from './target-python.js';

const host = (version: string | null) => () => Promise.resolve(version);
const image = (version: string | null) => () => Promise.resolve(version);
const never = () => Promise.reject(new Error('not to be asked'));

describe('chooseTarget', () => {
  it('--python-version wins over the host', async () => {
    await expect(chooseTarget('3.11.7', never, never)).resolves.toEqual({ target: '3.11.7', source: 'option' });
  });

  it("no option: the host's python3.11", async () => {
    await expect(chooseTarget(undefined, host('3.11.9'), never)).resolves.toEqual({ target: '3.11.9', source: 'host' });
  });

  it("no option and no python3.11: the image's own (known once the image is)", async () => {
    const chosen = await chooseTarget(undefined, host(null), never);
    expect(chosen).toEqual({ target: null, source: 'image' });
    expect(withImage(chosen, '3.11.2')).toEqual({ target: '3.11.2', source: 'image', image: '3.11.2' });
  });

  it('another major.minor by option: bad input (exit 2), naming both versions and what to do', async () => {
    const refused = chooseTarget('3.12.1', never, image('3.11.2'));
    await expect(refused).rejects.toBeInstanceOf(InputError);
    await expect(refused).rejects.toMatchObject({
      code: 'python.target-unsupported',
      message:
        'the target Python 3.12.1 (--python-version) is not a 3.11 release: the sandbox image runs Python 3.11.2, and markers and Requires-Python can be evaluated only for another 3.11.N; nothing was started',
      hint: 'install for a Python 3.11 (--python-version 3.11.N, the release the export will run on), or lock and install for 3.11 with a 3.11 interpreter',
    });
  });

  it('an image whose version cannot be read is named by its major.minor', async () => {
    await expect(chooseTarget('3.10.4', never, () => Promise.reject(new Error('no engine')))).rejects.toMatchObject({
      message: expect.stringContaining('the sandbox image runs Python 3.11,'),
    });
  });

  it('a detected interpreter of another major.minor is the environment (exit 3)', async () => {
    const refused = chooseTarget(undefined, host('3.12.0'), image(null));
    await expect(refused).rejects.toBeInstanceOf(EnvironmentError);
    await expect(refused).rejects.toMatchObject({ message: expect.stringContaining("the host's python3.11 says it is Python 3.12.0") });
  });

  it('a version that is not X.Y.Z is bad input', async () => {
    await expect(chooseTarget('3.11', never, never)).rejects.toMatchObject({ code: 'python.target-invalid' });
  });
});

describe('pipTarget', () => {
  it("the launcher only when the target is not the image's own release", () => {
    expect(pipTarget({ target: '3.11.7', source: 'host', image: '3.11.2' })).toBe('3.11.7');
    expect(pipTarget({ target: '3.11.2', source: 'option', image: '3.11.2' })).toBeNull();
    expect(pipTarget({ target: null, source: 'image', image: null })).toBeNull();
    // An unlabelled image: the launcher holds pip to the target whatever the image is.
    expect(pipTarget({ target: '3.11.7', source: 'option', image: null })).toBe('3.11.7');
  });
});
