// Setup checks shared by the factories: each throws a TypeError that names the helper, at once.

export function checkOptions<T extends object>(helper: string, options: T | undefined): Partial<T> {
  const value: unknown = options;
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${helper}: options must be an object`);
  }
  return value;
}

export function checkFunction(helper: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${helper}: ${name} must be a function`);
  }
}
